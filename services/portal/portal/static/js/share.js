// Progressive enhancement: a button that copies the address of the current search.
(function () {
  "use strict";
  var button = document.querySelector(".copy-link");
  if (!button || !navigator.clipboard) return;
  var status = document.querySelector(".copy-status");
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(window.location.href).then(function () {
      if (status) status.textContent = button.getAttribute("data-copied");
    });
  });
})();
