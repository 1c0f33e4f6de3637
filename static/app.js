// Small enhancements on top of htmx; every page works without this file.
document.addEventListener("htmx:beforeSwap", (event) => {
  // Let forms re-render with their validation errors (4xx with an HTML body) and show
  // rate-limit and error fragments instead of dropping them.
  const status = event.detail.xhr.status;
  if (status === 400 || status === 409 || status === 422 || status === 429) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
