// Runs the WebAuthn ceremony of every form marked data-passkey
// ("register" or "login"): its data-options hold the ceremony's options
// as JSON; the browser's answer goes into the form's "answer" field and
// the form is posted. No other script runs on moat's sign-in pages.
"use strict";
for (const form of document.querySelectorAll("form[data-passkey]")) {
  const status = form.querySelector("[data-passkey-status]");
  form.addEventListener("submit", async (ev) => {
    if (form.elements.answer.value) return; // the answer is in: post it
    ev.preventDefault();
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) {
      status.textContent = "This browser cannot use passkeys. Use an up-to-date browser, or the code from your authenticator app.";
      return;
    }
    const options = JSON.parse(form.dataset.options);
    try {
      const cred = form.dataset.passkey === "register"
        ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
        : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      form.elements.answer.value = JSON.stringify(cred.toJSON());
      form.requestSubmit();
    } catch (e) {
      status.textContent = "The passkey did not answer (" + e.name + "). Try again, or reload the page.";
    }
  });
}
