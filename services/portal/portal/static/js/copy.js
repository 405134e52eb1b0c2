// Progressive enhancement: a button that copies a read-only field (the webhook secret).
(function () {
  "use strict";
  var button = document.querySelector(".copy-secret");
  if (!button || !navigator.clipboard) return;
  var field = document.getElementById(button.getAttribute("data-target"));
  var status = document.querySelector(".copy-status");
  if (!field) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      if (status) status.textContent = button.getAttribute("data-copied");
    });
  });
})();
