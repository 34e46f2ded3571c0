// Sends the chosen file in pieces of 64 MiB, each from where the server says the upload stands, so
// that an interrupted upload resumes: choosing the same file again continues an upload of its size.
"use strict";
(function () {
  const form = document.getElementById("upload");
  if (!form) return;
  const PIECE = 64 * 1024 * 1024;
  const csrf = form.dataset.csrf;
  const progress = document.getElementById("progress");
  const status = document.getElementById("status");
  const headers = (extra) => Object.assign({ "x-csrf-token": csrf }, extra);

  async function declare(size) {
    for (const row of document.querySelectorAll("tr.upload")) {
      if (Number(row.dataset.size) === size && Number(row.dataset.offset) < size) {
        return row.dataset.id;
      }
    }
    const r = await fetch("/api/v1/uploads", {
      method: "POST",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify({ size: size }),
    });
    if (!r.ok) throw new Error((await r.json()).error || r.status);
    return (await r.json()).id;
  }

  async function offsetOf(id) {
    const r = await fetch("/api/v1/uploads/" + id, { headers: headers({}) });
    if (!r.ok) throw new Error(String(r.status));
    return (await r.json()).offset;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = document.getElementById("file").files[0];
    if (!file) return;
    try {
      const id = await declare(file.size);
      let offset = await offsetOf(id);
      while (offset < file.size) {
        const r = await fetch("/api/v1/uploads/" + id, {
          method: "PATCH",
          headers: headers({
            "upload-offset": String(offset),
            "content-type": "application/offset+octet-stream",
          }),
          body: file.slice(offset, Math.min(offset + PIECE, file.size)),
        });
        if (r.status !== 204 && r.status !== 409) throw new Error(String(r.status));
        offset = Number(r.headers.get("upload-offset"));
        progress.value = offset / file.size;
      }
      status.textContent = "✓";
      location.reload();
    } catch (err) {
      status.textContent = "✗ " + err.message;
    }
  });
})();
