// Small enhancements on top of htmx; every page works without this file.

// Lets the stylesheet hide what only a page without JavaScript needs (`.without-js`). Set on
// <html>, which htmx's boosted navigation keeps while it swaps the body.
document.documentElement.classList.add("js");

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

// File fields (a CSV source's file): a chosen file is uploaded at once to the input's
// data-upload URL (POST /api/files, with the session cookie and this page's Origin), and the
// stored path goes into the field; choosing an uploaded file in the list copies its path.
// Without this script the form's own Upload and "Use this file" buttons do the same.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.type === "file" && target.dataset.upload) {
    uploadFile(target);
  } else if (target instanceof HTMLSelectElement && target.dataset.pickTo) {
    const field = document.getElementById(target.dataset.pickTo);
    if (field && target.value) field.value = target.value;
  }
});

// A path typed by hand shows in the list when it is one of the uploaded files.
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLInputElement) || !field.id) return;
  const list = document.querySelector(`select[data-pick-to="${CSS.escape(field.id)}"]`);
  if (!list) return;
  const known = [...list.options].some((option) => option.value && option.value === field.value);
  list.value = known ? field.value : "";
});

async function uploadFile(input) {
  const file = input.files?.[0];
  if (!file) return;
  const field = document.getElementById(input.dataset.uploadTo);
  const status = document.getElementById(input.dataset.uploadStatus);
  const say = (text, kind) => {
    if (!status) return;
    status.textContent = text;
    status.dataset.state = kind;
  };
  const body = new FormData();
  body.append("file", file);
  say(`Uploading ${file.name}…`, "busy");
  input.disabled = true;
  try {
    const response = await fetch(input.dataset.upload, {
      method: "POST",
      body,
      headers: { accept: "application/json" },
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok || typeof answer.path !== "string") {
      say(answer.error ?? `The upload failed (HTTP ${response.status})`, "error");
      return;
    }
    if (field) field.value = answer.path;
    // The list is a convenience: the upload worked even if it cannot be refreshed now.
    await refreshFileList(input, answer.path).catch(() => {});
    say(
      answer.renamed
        ? `Uploaded as ${answer.path} (${formatBytes(answer.size)}): the name was taken or ` +
          "not allowed as it was"
        : `Uploaded ${answer.path} (${formatBytes(answer.size)})`,
      "done",
    );
  } catch {
    say("The upload failed: the server could not be reached", "error");
  } finally {
    // Sent already: the form itself must not carry the file again.
    input.value = "";
    input.disabled = false;
  }
}

// The list of uploaded files again from GET /api/files, with the new one chosen.
async function refreshFileList(input, chosen) {
  const list = document.getElementById(input.dataset.pick);
  if (!list) return;
  const response = await fetch(input.dataset.upload, { headers: { accept: "application/json" } });
  if (!response.ok) return;
  const files = await response.json();
  const first = list.options[0];
  first.textContent = files.length ? "Choose a file" : "No files uploaded yet";
  list.replaceChildren(
    first,
    ...files.map((file) => new Option(`${file.path} (${formatBytes(file.size)})`, file.path)),
  );
  list.value = chosen;
}

// The same units as the server's pages (views/_format.ts).
function formatBytes(value) {
  if (!Number.isFinite(value) || value < 0) return "—";
  if (value < 1024) return `${value} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled.toFixed(scaled >= 100 ? 0 : 1)} ${units[unit]}`;
}
