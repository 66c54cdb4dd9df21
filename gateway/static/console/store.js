// Store staff: today's pickups at their store, mark ready, hand over, take a return.
"use strict";
(() => {
  const { el, gql, show, problem, table, when, checked } = Console;
  const who = Console.page();
  if (!who) return;
  const ORDER_FIELDS = "id number status fulfillmentMethod placedAt reservedUntil total { amount currency } lines { id sku name quantity quantityReturned } payment { method status }";
  const ORDERS = `query Pickups($filter: OrderFilter, $after: String) { orders(first: 100, after: $after, filter: $filter) { edges { node { ${ORDER_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;
  const READY = `mutation Ready($id: ID!) { orderMarkReadyForPickup(orderId: $id) { order { id status } userErrors { code field message } } }`;
  const HAND_OVER = `mutation HandOver($id: ID!) { orderConfirmPickup(orderId: $id) { order { id status } userErrors { code field message } } }`;
  const RETURN = `mutation Return($id: ID!, $lines: [ReturnLineInput!]!, $location: ID!) { orderReturnLines(orderId: $id, lines: $lines, locationId: $location) { order { id status } userErrors { code field message } } }`;
  const select = document.getElementById("store");
  const message = document.getElementById("message");

  function overdue(order) {
    return order.reservedUntil && new Date(order.reservedUntil) < new Date();
  }

  function status(order) {
    return [order.status.replace(/_/g, " ").toLowerCase(), overdue(order) ? el("span", { class: "badge overdue" }, "OVERDUE") : null];
  }

  async function act(document, id, done) {
    try {
      const data = await gql(document, { id: id });
      checked(Object.values(data)[0]);
      show(message, el("p", { class: "ok" }, done));
      await load();
    } catch (error) {
      show(message, problem(error));
    }
  }

  const columns = (action) => [
    { title: "Order", cell: (o) => o.number },
    { title: "Status", cell: status },
    { title: "How", cell: (o) => o.fulfillmentMethod.replace(/_/g, " ").toLowerCase() },
    { title: "Items", cell: (o) => o.lines.map((l) => l.quantity + " × " + l.name).join(", ") },
    { title: "Total", num: true, cell: (o) => o.total.amount + " " + o.total.currency },
    { title: "Payment", cell: (o) => o.payment.method + " (" + o.payment.status.toLowerCase().replace(/_/g, " ") + ")" },
    { title: "Hold until", cell: (o) => when(o.reservedUntil) },
    { title: "", cell: action },
  ];

  function returnForm(order) {
    const inputs = order.lines.map((line) =>
      el("input", { type: "number", min: 0, max: line.quantity - line.quantityReturned, value: 0, "aria-label": "Return quantity of " + line.name, "data-line": line.id }),
    );
    const form = el(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          const lines = inputs.map((i) => ({ orderLineId: i.dataset.line, quantity: Number(i.value) })).filter((l) => l.quantity > 0);
          try {
            checked((await gql(RETURN, { id: order.id, lines: lines, location: select.value })).orderReturnLines);
            show(message, el("p", { class: "ok" }, "Return of order " + order.number + " taken."));
            await load();
          } catch (error) {
            show(message, problem(error));
          }
        },
      },
      table(
        [
          { title: "Item", cell: (pair) => pair[0].sku + " " + pair[0].name },
          { title: "Bought", num: true, cell: (pair) => pair[0].quantity },
          { title: "Returned", num: true, cell: (pair) => pair[0].quantityReturned },
          { title: "Return now", cell: (pair) => pair[1] },
        ],
        order.lines.map((line, i) => [line, inputs[i]]),
      ),
      el("button", { type: "submit" }, "Take return of " + order.number),
    );
    return form;
  }

  // The store's orders in these statuses, newest first: every page of them, or (`pages`) the first few.
  async function orders(status, pages) {
    const found = [];
    let after = null;
    for (let page = 0; page < (pages || Infinity); page++) {
      const data = await gql(ORDERS, { filter: { status: status, pickupLocationId: select.value }, after: after });
      found.push(...data.orders.edges.map((e) => e.node));
      if (!data.orders.pageInfo.hasNextPage) break;
      after = data.orders.pageInfo.endCursor;
    }
    return found;
  }

  async function load() {
    try {
      // Each list on its own: the pickups still to hand over, however many orders were completed since.
      const [waiting, ready, done] = await Promise.all([
        orders(["PLACED", "RESERVED"]),
        orders(["READY_FOR_PICKUP"]),
        orders(["COMPLETED", "PARTIALLY_RETURNED"], 1),
      ]);
      show(document.getElementById("waiting"), table(columns((o) => el("button", { type: "button", onclick: () => act(READY, o.id, "Order " + o.number + " is ready for pickup.") }, "Mark ready")), waiting, (o) => (overdue(o) ? "overdue" : null)));
      show(document.getElementById("ready"), table(columns((o) => el("button", { type: "button", onclick: () => act(HAND_OVER, o.id, "Order " + o.number + " handed over.") }, "Hand over")), ready, (o) => (overdue(o) ? "overdue" : null)));
      // one form per order, each its own child (an array would be appended as its text)
      show(document.getElementById("returns"), ...(done.length ? done.map(returnForm) : [el("p", { class: "note" }, "No completed orders at this store.")]));
    } catch (error) {
      show(message, problem(error));
    }
  }

  async function start() {
    try {
      const data = await gql("{ locations(kind: STORE) { id code name city } }");
      const stores = data.locations.filter((l) => !who.loc || l.code === who.loc);
      show(select, ...stores.map((l) => el("option", { value: l.id }, l.name + " (" + l.city + ")")));
      await load();
    } catch (error) {
      show(message, problem(error));
    }
  }

  document.getElementById("store-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  start();
})();
