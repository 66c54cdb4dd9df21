// The DPO: requests and their deadlines, export, erasure (with what the law keeps), extension, access history.
"use strict";
(() => {
  const { el, gql, show, problem, table, when, checked, download } = Console;
  if (!Console.page()) return;
  const REQUEST_FIELDS = "id kind status customerId receivedAt dueAt completedAt extensionReason retained { category reason legalBasis until }";
  const REQUESTS = `{ dataSubjectRequests(first: 100) { ${REQUEST_FIELDS} } }`;
  const FIND = `query Find($email: String!) { customerByEmail(email: $email) { id email firstName lastName } }`;
  const EXPORT = `mutation Export($id: ID!) { dataSubjectExport(customerId: $id) { request { id status export } userErrors { code field message } } }`;
  const ERASE = `mutation Erase($id: ID!) { dataSubjectErase(customerId: $id) { request { ${REQUEST_FIELDS} } userErrors { code field message } } }`;
  const EXTEND = `mutation Extend($id: ID!, $reason: String!) { dataSubjectRequestExtend(requestId: $id, reason: $reason) { request { id dueAt extensionReason } userErrors { code field message } } }`;
  const KEPT = `{ retentionRules { category onErasure retainedFor legalBasis reason } }`;
  const HISTORY = `query History($id: ID!) { customerAccessLog(customerId: $id, first: 50) { recordedAt actor role channel operation outcome } }`;
  const WEEK = 7 * 86400000;
  const message = document.getElementById("message");
  let person = null;

  function urgency(request) {
    if (request.status === "COMPLETED" || request.status === "REJECTED") return null;
    const left = new Date(request.dueAt) - new Date();
    return left < 0 ? "overdue" : left < WEEK ? "soon" : null;
  }

  function due(request) {
    const flag = urgency(request);
    return [when(request.dueAt), flag === "overdue" ? el("span", { class: "badge overdue" }, " OVERDUE") : flag === "soon" ? el("span", { class: "badge soon" }, " DUE THIS WEEK") : null];
  }

  function extendForm(request) {
    if (request.extensionReason || request.status === "COMPLETED" || request.status === "REJECTED") return request.extensionReason || "";
    const reason = el("input", { type: "text", required: true, "aria-label": "Reason to extend", placeholder: "reason" });
    return el(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            checked((await gql(EXTEND, { id: request.id, reason: reason.value })).dataSubjectRequestExtend);
            show(message, el("p", { class: "ok" }, "Deadline extended."));
            await loadRequests();
          } catch (error) {
            show(message, problem(error));
          }
        },
      },
      reason,
      el("button", { type: "submit", class: "secondary" }, "Extend"),
    );
  }

  async function loadRequests() {
    try {
      const data = await gql(REQUESTS);
      const columns = [
        { title: "Kind", cell: (r) => r.kind.toLowerCase() },
        { title: "Status", cell: (r) => r.status.toLowerCase().replace(/_/g, " ") },
        { title: "Received", cell: (r) => when(r.receivedAt) },
        { title: "Due", cell: due },
        { title: "Completed", cell: (r) => when(r.completedAt) },
        { title: "Extension", cell: extendForm },
      ];
      show(document.getElementById("requests"), table(columns, data.dataSubjectRequests, urgency));
    } catch (error) {
      show(message, problem(error));
    }
  }

  async function exportPerson() {
    try {
      const payload = checked((await gql(EXPORT, { id: person.id })).dataSubjectExport);
      download("data-subject-export.json", "application/json", JSON.stringify(payload.request.export, null, 2));
      show(message, el("p", { class: "ok" }, "Export ready: data-subject-export.json downloaded."));
      await loadRequests();
    } catch (error) {
      show(message, problem(error));
    }
  }

  async function showErase() {
    document.getElementById("erase-section").hidden = false;
    try {
      const rules = (await gql(KEPT)).retentionRules;
      show(
        document.getElementById("kept"),
        el("p", {}, "What erasure deletes now, and what the law requires to keep (without anything that identifies the person):"),
        table(
          [
            { title: "Data", cell: (r) => r.category },
            { title: "On erasure", cell: (r) => r.onErasure },
            { title: "Kept for", cell: (r) => r.retainedFor },
            { title: "Why", cell: (r) => r.reason },
            { title: "Legal basis", cell: (r) => r.legalBasis },
          ],
          rules,
        ),
      );
    } catch (error) {
      show(document.getElementById("kept"), problem(error));
    }
  }

  async function showHistory() {
    document.getElementById("history-section").hidden = false;
    try {
      const entries = (await gql(HISTORY, { id: person.id })).customerAccessLog;
      show(
        document.getElementById("history"),
        table(
          [
            { title: "When", cell: (e) => when(e.recordedAt) },
            { title: "Who", cell: (e) => e.actor + " (" + e.role + ")" },
            { title: "Channel", cell: (e) => e.channel },
            { title: "What", cell: (e) => e.operation },
            { title: "Outcome", cell: (e) => e.outcome },
          ],
          entries,
        ),
      );
    } catch (error) {
      show(document.getElementById("history"), problem(error));
    }
  }

  document.getElementById("find").addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = document.getElementById("person");
    document.getElementById("erase-section").hidden = true;
    document.getElementById("history-section").hidden = true;
    try {
      person = (await gql(FIND, { email: document.getElementById("email").value })).customerByEmail;
      if (!person) {
        show(target, el("p", { class: "note" }, "Nobody with this email."));
        return;
      }
      show(
        target,
        el("p", {}, person.firstName + " " + person.lastName + " <" + person.email + ">"),
        el("button", { type: "button", onclick: exportPerson }, "Export (download JSON)"),
        el("button", { type: "button", class: "danger", onclick: showErase }, "Erase…"),
        el("button", { type: "button", class: "secondary", onclick: showHistory }, "Access history"),
      );
    } catch (error) {
      show(target, problem(error));
    }
  });

  document.getElementById("erase").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = document.getElementById("erase-result");
    if (!person || document.getElementById("confirm-email").value.trim().toLowerCase() !== person.email.toLowerCase()) {
      show(result, el("p", { class: "error", role: "alert" }, "The email typed is not this person's: nothing was erased."));
      return;
    }
    try {
      const request = checked((await gql(ERASE, { id: person.id })).dataSubjectErase).request;
      show(
        result,
        el("p", { class: "ok" }, "Erasure " + request.status.toLowerCase().replace(/_/g, " ") + "."),
        table(
          [
            { title: "Kept", cell: (r) => r.category },
            { title: "Why", cell: (r) => r.reason },
            { title: "Legal basis", cell: (r) => r.legalBasis },
            { title: "Until", cell: (r) => when(r.until) },
          ],
          request.retained,
        ),
      );
      await loadRequests();
    } catch (error) {
      show(result, problem(error));
    }
  });

  loadRequests();
})();
