// What every console page shares: the operator's token, GraphQL calls with it, and safe DOM building.
// Pages never hold data of their own: each value shown comes from a GraphQL operation run with the
// operator's own token, so the API's policies and audit log apply unchanged.
"use strict";
const Console = (() => {
  const KEY = "omnigate.operatorToken";

  class ApiError extends Error {
    constructor(errors) {
      super(errors.map((e) => e.message).join(" "));
      this.codes = errors.map((e) => (e.extensions && e.extensions.code) || "ERROR");
    }
  }

  function token() {
    return sessionStorage.getItem(KEY);
  }

  function signIn(value) {
    sessionStorage.setItem(KEY, value.trim());
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    window.location.assign("/console/");
  }

  // The token's claims, for the page's own use (which store, which role); the server checks the token.
  function claims() {
    const raw = token();
    if (!raw) return null;
    try {
      const part = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    } catch (error) {
      return null;
    }
  }

  async function gql(query, variables) {
    const who = claims() || {};
    const response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        Authorization: "Bearer " + (token() || ""),
        "X-Channel": who.role === "staff" ? "store" : "web",
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    });
    let body;
    try {
      body = await response.json();
    } catch (error) {
      throw new ApiError([{ message: "The gateway answered HTTP " + response.status + ".", extensions: { code: "HTTP_" + response.status } }]);
    }
    if (body.errors && body.errors.length) throw new ApiError(body.errors);
    return body.data;
  }

  // A payload's userErrors as an ApiError, so pages handle refusals of every kind the same way.
  function checked(payload) {
    if (payload && payload.userErrors && payload.userErrors.length) throw new ApiError(payload.userErrors.map((e) => ({ message: e.message, extensions: { code: e.code } })));
    return payload;
  }

  // Elements built from data with textContent only: nothing the API returns is ever parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(container, ...nodes) {
    container.replaceChildren(...nodes);
  }

  function problem(error) {
    const codes = error.codes ? " (" + error.codes.join(", ") + ")" : "";
    return el("p", { class: "error", role: "alert" }, error.message + codes);
  }

  function table(columns, rows, rowClass) {
    return el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.title)))),
        el(
          "tbody",
          {},
          rows.length
            ? rows.map((row) => el("tr", { class: rowClass ? rowClass(row) : null }, columns.map((c) => el("td", { class: c.num ? "num" : null }, c.cell(row)))))
            : el("tr", {}, el("td", { colspan: columns.length, class: "note" }, "Nothing to show.")),
        ),
      ),
    );
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function download(name, type, text) {
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: type })), download: name });
    document.body.append(link);
    link.click();
    link.remove();
  }

  // Every page but the sign-in page: the header shows who is signed in; no token sends you to sign in.
  function page() {
    const who = claims();
    const here = document.getElementById("who");
    if (!who) {
      window.location.assign("/console/");
      return null;
    }
    if (here) {
      show(here, (who.role || "operator") + (who.loc || who.store ? " at " + (who.loc || who.store) : "") + " ", el("button", { class: "secondary", type: "button", onclick: signOut }, "Sign out"));
    }
    return who;
  }

  return { ApiError, checked, claims, download, el, gql, page, problem, show, signIn, signOut, table, token, when };
})();
