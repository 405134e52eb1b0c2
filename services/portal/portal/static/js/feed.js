// Progressive enhancement of the alert feed: new alerts arrive by server-sent events
// (/me/feed/stream, the portal's relay of notifications' stream) and are inserted at the top of
// the list, inside its aria-live region; the unread count follows. Without JavaScript the page
// works as it is (plain forms, reload to see new alerts).
(function () {
  "use strict";
  var count = document.getElementById("unread-count");
  var list = document.getElementById("feed-list");
  if (!count || !list || !window.EventSource) return;
  var empty = document.getElementById("feed-empty");
  var status = document.getElementById("feed-live-status");
  var baseTitle = document.title;

  function say(key) {
    if (!status) return;
    status.textContent = status.getAttribute(key) || "";
    status.hidden = false;
  }

  var readAll = document.getElementById("feed-read-all");

  function unread(n, text) {
    count.textContent = text;
    if (readAll) readAll.hidden = n === 0;
    document.title = n > 0 ? "(" + n + ") " + baseTitle : baseTitle;
  }

  var source = new EventSource(count.getAttribute("data-stream"));
  source.addEventListener("open", function () {
    say("data-connected");
    document.body.setAttribute("data-feed-live", "open");
  });
  source.addEventListener("alert", function (event) {
    var message = JSON.parse(event.data);
    if (document.getElementById("alert-" + message.id)) return;
    // The HTML was rendered and escaped by the portal's templates.
    var holder = document.createElement("template");
    holder.innerHTML = message.html.trim();
    var item = holder.content.firstElementChild;
    if (!item) return;
    list.insertBefore(item, list.firstElementChild);
    if (empty) empty.hidden = true;
  });
  source.addEventListener("unread", function (event) {
    var message = JSON.parse(event.data);
    unread(message.count, message.text);
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) say("data-lost");
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
