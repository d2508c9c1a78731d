// Fills in street and town from the address register (BAG) once postcode and house number are
// typed. Asks coop's own /address-lookup (coop asks PDOK), never another site. Only fills a
// field that is empty or still holds what it filled in itself: what the person typed stays.
// Without JavaScript the form does the same on submit; either way the person can type them.
(function () {
  "use strict";
  var form = document.querySelector("form[data-address-lookup]");
  var status = document.getElementById("address-lookup-status");
  if (!form || !status || !window.fetch) { return; }
  var url = form.getAttribute("data-address-lookup");
  var field = function (name) { return form.querySelector("[name='" + name + "']"); };
  var postcode = field("postcode");
  var number = field("house_number");
  var addition = field("house_number_addition");
  var street = field("street");
  var city = field("city");
  if (!postcode || !number || !street) { return; }
  var ours = { street: null, city: null };  // what the script filled in, per field
  var asked = "";
  var timer = null;
  var pending = null;

  function complete() {
    return /^\s*[1-9][0-9]{3}\s*[a-zA-Z]{2}\s*$/.test(postcode.value) &&
      /^\s*[0-9]+/.test(number.value);
  }
  function free(input, key) {
    return input && (input.value.trim() === "" || input.value === ours[key]);
  }
  function say(text) { status.textContent = text || ""; }
  function fill(input, key, value) {
    if (free(input, key) && value) { input.value = value; ours[key] = value; }
  }

  function lookUp() {
    if (!complete() || !(free(street, "street") || free(city, "city"))) { return; }
    var query = "postcode=" + encodeURIComponent(postcode.value.trim()) +
      "&house_number=" + encodeURIComponent(number.value.trim()) +
      (addition ? "&house_number_addition=" + encodeURIComponent(addition.value.trim()) : "");
    if (query === asked) { return; }
    asked = query;
    if (pending) { pending.abort(); }
    pending = window.AbortController ? new AbortController() : null;
    var controller = pending;
    var giveUp = window.setTimeout(function () { if (controller) { controller.abort(); } }, 6000);
    fetch(url + "?" + query, {
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    })
      .then(function (response) { return response.ok ? response.json() : { found: false, reason: "unavailable" }; })
      .then(function (answer) {
        window.clearTimeout(giveUp);
        if (query !== asked) { return; }  // a newer question is on its way
        if (answer.found) {
          fill(street, "street", answer.street);
          fill(city, "city", answer.city);
          say(status.getAttribute("data-found"));
        } else if (answer.reason === "not_found") {
          say(status.getAttribute("data-not-found"));
        } else if (answer.reason === "unavailable") {
          say(status.getAttribute("data-unavailable"));
        }
      })
      .catch(function () {
        window.clearTimeout(giveUp);
        if (query === asked) {
          asked = "";
          say(status.getAttribute("data-unavailable"));
        }
      });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(lookUp, 400);
  }
  [postcode, number, addition].forEach(function (input) {
    if (!input) { return; }
    input.addEventListener("input", soon);
    input.addEventListener("change", lookUp);
  });
})();
