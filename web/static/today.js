// The Today page's live part: a call that ends refreshes #today at once (server-sent events from
// /today/events); while that stream is down, htmx polls every 30 s instead (today_live.html).
(function () {
  const since = document.currentScript.dataset.since;
  const events = new EventSource("/today/events?since=" + encodeURIComponent(since));
  events.addEventListener("call_ended", () => htmx.trigger("#today", "call-ended"));
  window.todayEvents = events;
})();

function todayStreamDown() {
  return !window.todayEvents || window.todayEvents.readyState !== EventSource.OPEN;
}
