// Starts Parley's client, web/client compiled to WebAssembly; the page logic is all there.
"use strict";
(async () => {
  try {
    const go = new Go();
    const { instance } = await WebAssembly.instantiateStreaming(fetch("/parley.wasm"), go.importObject);
    await go.run(instance); // returns only if the client exits, which it does not mean to
    throw new Error("the client stopped");
  } catch (err) {
    const status = document.getElementById("status");
    status.textContent = "This page could not start (" + err + "). Reload it, or try a newer browser.";
    status.className = "status error";
  }
})();
