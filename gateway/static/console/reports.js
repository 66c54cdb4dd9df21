// Admins (every store) and staff (their own store): the sales report as charts, a table and CSV.
"use strict";
(() => {
  const { el, gql, show, problem, table, download } = Console;
  const who = Console.page();
  if (!who) return;
  const REPORT = `query Report($from: DateTime!, $to: DateTime!, $period: ReportPeriod, $location: ID) {
    salesReport(from: $from, to: $to, period: $period, locationId: $location) {
      currency
      rows { periodStart channel orders itemsSold revenue { amount } discounts { amount } returns { amount } averageOrderValue { amount } clickAndCollectShare }
      totals { periodStart channel orders itemsSold revenue { amount } discounts { amount } returns { amount } averageOrderValue { amount } clickAndCollectShare }
    }
  }`;
  // Told apart without colour too: each channel has its own line dash and point shape.
  const STYLES = [
    { color: "#0b5cad", dash: [], point: "circle" },
    { color: "#a40e26", dash: [6, 4], point: "rect" },
    { color: "#1a7f37", dash: [2, 3], point: "triangle" },
    { color: "#7a4d00", dash: [10, 3, 2, 3], point: "rectRot" },
    { color: "#6e40c9", dash: [1, 1], point: "star" },
  ];
  const PATTERN_WIDTH = [0, 2, 4, 6, 8];
  const charts = {};
  let report = null;
  const form = document.getElementById("report-form");
  const message = document.getElementById("message");
  const csvButton = document.getElementById("csv");

  function day(date) {
    return date.toISOString().slice(0, 10);
  }

  // Sums (revenue, returns) are 0 in a period without orders; ratios (average, share) have no value there.
  function series(rows, value, empty) {
    const periods = [...new Set(rows.map((r) => r.periodStart))].sort();
    const channels = [...new Set(rows.map((r) => r.channel))].sort();
    const datasets = channels.map((channel, i) => {
      const style = STYLES[i % STYLES.length];
      const byPeriod = new Map(rows.filter((r) => r.channel === channel).map((r) => [r.periodStart, value(r)]));
      return {
        label: channel,
        data: periods.map((p) => (byPeriod.has(p) ? byPeriod.get(p) : empty)),
        backgroundColor: style.color + "99",
        borderColor: style.color,
        borderDash: style.dash,
        borderWidth: 2 + PATTERN_WIDTH[i % PATTERN_WIDTH.length] / 4,
        pointStyle: style.point,
        pointRadius: 4,
        spanGaps: false,
      };
    });
    return { labels: periods.map((p) => p.slice(0, 10)), datasets: datasets };
  }

  function draw(id, type, data, stacked, axis) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), {
      type: type,
      data: data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { labels: { usePointStyle: true } } },
        scales: { x: { stacked: stacked, title: { display: true, text: "period" } }, y: { stacked: stacked, beginAtZero: true, title: { display: true, text: axis } } },
      },
    });
  }

  function render() {
    const rows = report.rows;
    const money = (m) => Number(m.amount);
    draw("revenue", "bar", series(rows, (r) => money(r.revenue), 0), true, report.currency);
    draw("aov", "line", series(rows, (r) => money(r.averageOrderValue), null), false, report.currency);
    draw("share", "line", series(rows, (r) => Number(r.clickAndCollectShare) * 100, null), false, "% of orders");
    draw("returns", "bar", series(rows, (r) => money(r.returns), 0), true, report.currency);
    const columns = [
      { title: "Period", cell: (r) => (r.periodStart ? r.periodStart.slice(0, 10) : "total") },
      { title: "Channel", cell: (r) => r.channel },
      { title: "Orders", num: true, cell: (r) => r.orders },
      { title: "Items", num: true, cell: (r) => r.itemsSold },
      { title: "Revenue", num: true, cell: (r) => r.revenue.amount },
      { title: "Discounts", num: true, cell: (r) => r.discounts.amount },
      { title: "Returns", num: true, cell: (r) => r.returns.amount },
      { title: "Avg order", num: true, cell: (r) => r.averageOrderValue.amount },
      { title: "C&C share", num: true, cell: (r) => (Number(r.clickAndCollectShare) * 100).toFixed(1) + " %" },
    ];
    const totals = report.totals.map((r) => Object.assign({}, r, { periodStart: null }));
    show(document.getElementById("table"), el("p", { class: "note" }, "Amounts in " + report.currency + "; the last rows are totals over the whole range."), table(columns, rows.concat(totals)));
    csvButton.disabled = false;
  }

  function csv() {
    const head = ["period_start", "channel", "orders", "items_sold", "revenue", "discounts", "returns", "average_order_value", "click_and_collect_share", "currency"];
    const lines = report.rows.concat(report.totals.map((r) => Object.assign({}, r, { periodStart: null }))).map((r) =>
      [r.periodStart || "total", r.channel, r.orders, r.itemsSold, r.revenue.amount, r.discounts.amount, r.returns.amount, r.averageOrderValue.amount, r.clickAndCollectShare, report.currency]
        .map((v) => '"' + String(v).replace(/"/g, '""') + '"')
        .join(","),
    );
    download("sales-report.csv", "text/csv", [head.join(",")].concat(lines).join("\r\n") + "\r\n");
  }

  async function load() {
    const data = new FormData(form);
    const to = new Date(data.get("to") + "T00:00:00Z");
    to.setUTCDate(to.getUTCDate() + 1); // the whole last day
    try {
      const answer = await gql(REPORT, {
        from: data.get("from") + "T00:00:00+00:00",
        to: to.toISOString(),
        period: data.get("period"),
        location: data.get("location") || null,
      });
      report = answer.salesReport;
      show(message);
      render();
    } catch (error) {
      report = null;
      csvButton.disabled = true;
      show(message, problem(error));
    }
  }

  async function start() {
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 30 * 86400000);
    document.getElementById("from").value = day(monthAgo);
    document.getElementById("to").value = day(today);
    try {
      const data = await gql("{ locations(kind: STORE) { id code name } }");
      const select = document.getElementById("location");
      const stores = data.locations.filter((l) => !who.loc || l.code === who.loc);
      if (who.loc) select.replaceChildren();
      select.append(...stores.map((l) => el("option", { value: l.id }, l.name)));
    } catch (error) {
      show(message, problem(error));
    }
    await load();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  csvButton.addEventListener("click", csv);
  start();
})();
