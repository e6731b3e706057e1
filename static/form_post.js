// Form Post Response Mode: submit the authorization response to the client at once.
// (The CSP forbids inline script; without JavaScript the page's button does the same.)
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("form-post");
  if (form) form.submit();
});
