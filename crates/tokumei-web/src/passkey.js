// Passkeys (WebAuthn): adds one at /passkeys, signs in with one at /signin. The server's options
// carry binary fields as base64url; they are turned into bytes for the browser, and the
// authenticator's answer back into base64url for the server.
"use strict";
(function () {
  const b64 = {
    bytes(s) {
      const t = s.replace(/-/g, "+").replace(/_/g, "/");
      const bin = atob(t + "===".slice((t.length + 3) % 4));
      return Uint8Array.from(bin, (c) => c.charCodeAt(0));
    },
    text(buf) {
      const bytes = new Uint8Array(buf);
      let bin = "";
      for (const b of bytes) bin += String.fromCharCode(b);
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  async function call(path, csrf, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
    });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(answer.error || String(r.status));
    return answer;
  }

  function credentialJSON(c) {
    const r = c.response;
    const response = { clientDataJSON: b64.text(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64.text(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = b64.text(r.authenticatorData);
      response.signature = b64.text(r.signature);
      if (r.userHandle) response.userHandle = b64.text(r.userHandle);
    }
    return {
      id: c.id,
      rawId: b64.text(c.rawId),
      type: c.type,
      response: response,
      extensions: c.getClientExtensionResults(),
    };
  }

  async function add(form, status) {
    const csrf = form.dataset.csrf;
    const label = document.getElementById("passkey-label").value;
    const begun = await call("/passkeys/begin", csrf);
    const o = begun.options.publicKey;
    o.challenge = b64.bytes(o.challenge);
    o.user.id = b64.bytes(o.user.id);
    for (const c of o.excludeCredentials || []) c.id = b64.bytes(c.id);
    const created = await navigator.credentials.create({ publicKey: o });
    const done = await call("/passkeys/finish", csrf, {
      id: begun.id,
      label: label,
      credential: credentialJSON(created),
    });
    location.assign(done.to);
  }

  async function signIn(csrf) {
    const begun = await call("/signin/passkey/begin", csrf);
    const o = begun.options.publicKey;
    o.challenge = b64.bytes(o.challenge);
    for (const c of o.allowCredentials || []) c.id = b64.bytes(c.id);
    const got = await navigator.credentials.get({ publicKey: o });
    const done = await call("/signin/passkey/finish", csrf, {
      id: begun.id,
      credential: credentialJSON(got),
    });
    location.assign(done.to);
  }

  const status = document.getElementById("passkey-status");
  const report = (e) => {
    if (status) status.textContent = e.message || String(e);
  };
  const form = document.getElementById("passkey-add");
  if (form) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      add(form, status).catch(report);
    });
  }
  const button = document.getElementById("passkey-signin");
  if (button) {
    if (!window.PublicKeyCredential) button.hidden = true;
    button.addEventListener("click", () => {
      const csrf = document.querySelector("input[name=csrf]").value;
      signIn(csrf).catch(report);
    });
  }
})();
