// GraphiQL against this gateway: HTTP for queries and mutations, graphql-transport-ws for subscriptions.
"use strict";
(function () {
  const url = window.location.origin + "/graphql";
  const subscriptionUrl = url.replace(/^http/, "ws");
  const fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: subscriptionUrl });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: "{ products(first: 3) { totalCount edges { node { name variants { sku price { amount currency } } } } } }\n",
    }),
  );
})();
