// Runs the WebAuthn ceremony of every form marked data-passkey
// ("register" or "login"): its data-options hold the ceremony's options
// as JSON; the browser's answer goes into the form's "answer" field and
// the form is posted. The ceremony starts when the form's button marked
// data-passkey-start is clicked or, without one, when the form is
// submitted. No other script runs on moat's sign-in pages.
"use strict";
for (const form of document.querySelectorAll("form[data-passkey]")) {
  const status = form.querySelector("[data-passkey-status]");
  const start = form.querySelector("[data-passkey-start]");
  const run = async (ev) => {
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
      form.submit();
    } catch (e) {
      status.textContent = "The passkey did not answer (" + e.name + "). Try again, or reload the page.";
    }
  };
  if (start) {
    start.addEventListener("click", run);
  } else {
    form.addEventListener("submit", (ev) => { if (!form.elements.answer.value) run(ev); });
  }
}
