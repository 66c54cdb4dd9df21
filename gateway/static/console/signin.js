"use strict";
(() => {
  const form = document.getElementById("sign-in");
  const done = document.getElementById("signed-in");
  function render() {
    const who = Console.claims();
    form.hidden = Boolean(who);
    done.hidden = !who;
    if (who) Console.show(document.getElementById("signed-in-as"), "Signed in as " + (who.role || "operator") + (who.loc ? " at store " + who.loc : "") + ".");
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Console.signIn(document.getElementById("token").value);
    if (!Console.claims()) {
      Console.signOut();
      return;
    }
    render();
  });
  document.getElementById("sign-out").addEventListener("click", Console.signOut);
  render();
})();
