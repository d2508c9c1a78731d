// Moves the progress bar of a matching run without reloading; reloads once the run is done.
// Without JavaScript the page has a refresh link and shows the same information.
(function () {
  "use strict";
  var section = document.getElementById("progress-section");
  if (!section) { return; }
  var url = section.getAttribute("data-status-url");
  var bar = document.getElementById("run-progress");
  var stage = document.getElementById("run-stage");
  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { window.setTimeout(poll, 5000); return; }
        bar.value = data.progress;
        bar.textContent = data.progress + "%";
        stage.textContent = data.progress + "% · " + data.label;
        if (data.finished) { window.location.reload(); } else { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
})();
