// Small enhancements on top of htmx; every page works without this file.

// "Copy" buttons next to a value shown once (a new API token).
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) return;
  source.select();
  navigator.clipboard?.writeText(source.value).then(
    () => (button.textContent = "Copied"),
    () => (button.textContent = "Select and copy"),
  );
});

// A link to a table of the schema browser (a foreign key) opens that table's card.
function openTarget() {
  const id = decodeURIComponent(location.hash.slice(1));
  const target = id ? document.getElementById(id) : null;
  if (target instanceof HTMLDetailsElement) target.open = true;
}
addEventListener("hashchange", openTarget);
document.addEventListener("DOMContentLoaded", openTarget);
