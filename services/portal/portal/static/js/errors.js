// Progressive enhancement: move the focus to the error summary, so keyboard and screen-reader
// users hear what to correct first (the summary's links then lead to each field).
(function () {
  "use strict";
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();
})();
