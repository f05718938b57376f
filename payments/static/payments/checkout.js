// The hosted checkout page: validates the phone number, starts the push, polls until a final
// status. Its URLs come from the form's data attributes, so they follow wherever the host
// mounted payments.urls.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  var phone = document.getElementById("phone");
  var phoneError = document.getElementById("phone-error");
  var payButton = document.getElementById("pay-button");
  var statusBox = document.getElementById("status");
  var statusMessage = document.getElementById("status-message");
  var receiptLine = document.getElementById("receipt-line");
  var receipt = document.getElementById("receipt");
  var retryButton = document.getElementById("retry-button");
  var POLL_MS = 2000;
  var pollTimer = null;

  function normalised(value) {
    var digits = value.replace(/[\s\-()]/g, "");
    if (digits.charAt(0) === "+") { digits = digits.slice(1); }
    if (!/^\d+$/.test(digits)) { return null; }
    if (digits.length === 10 && digits.charAt(0) === "0") { digits = "254" + digits.slice(1); }
    else if (digits.length === 9) { digits = "254" + digits; }
    return /^254[17]\d{8}$/.test(digits) ? digits : null;
  }

  function showFieldError(message) {
    phoneError.textContent = message;
    phone.setAttribute("aria-invalid", message ? "true" : "false");
  }

  function showStatus(message, kind) {
    statusBox.hidden = false;
    statusBox.className = "status" + (kind === "failed" ? " failed" : "");
    statusMessage.textContent = message;
  }

  function finish(data) {
    payButton.disabled = false;
    if (data.status === "success") {
      showStatus(data.message, "success");
      receipt.textContent = data.mpesa_receipt_number;
      receiptLine.hidden = !data.mpesa_receipt_number;
      form.hidden = true;
    } else {
      showStatus(data.message, "failed");
      retryButton.hidden = false;
    }
  }

  function poll(url) {
    fetch(url, {headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (data) { return [response.status, data]; });
      })
      .then(function (result) {
        var code = result[0], data = result[1];
        if (code >= 400 && code < 500) {
          // Not a hiccup: this payment cannot be followed from here. Stop and say why.
          payButton.disabled = false;
          showStatus(data.detail || "We cannot show this payment any more.", "failed");
          retryButton.hidden = false;
          return;
        }
        if (data.final) { finish(data); return; }
        showStatus(data.message, "pending");
        pollTimer = setTimeout(function () { poll(url); }, POLL_MS);
      })
      .catch(function () { pollTimer = setTimeout(function () { poll(url); }, POLL_MS); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var number = normalised(phone.value);
    if (!number) {
      showFieldError("Enter a Kenyan mobile number, like 0712 345 678.");
      phone.focus();
      return;
    }
    showFieldError("");
    payButton.disabled = true;
    retryButton.hidden = true;
    receiptLine.hidden = true;
    fetch(form.dataset.startUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({phone_number: phone.value})
    })
      .then(function (response) { return response.json().then(function (data) { return [response.status, data]; }); })
      .then(function (result) {
        var code = result[0], data = result[1];
        if (code === 400 && data.errors && data.errors.phone_number) {
          payButton.disabled = false;
          showFieldError(data.errors.phone_number[0]);
          return;
        }
        // 409: the link already has a payment; show it (its receipt, or its progress).
        var transaction = data.transaction || data;
        if (!transaction.id) {
          payButton.disabled = false;
          showStatus(data.detail || "We could not start the payment. Please try again.", "failed");
          retryButton.hidden = false;
          return;
        }
        if (transaction.final) { finish(transaction); return; }
        showStatus(transaction.message, "pending");
        poll(form.dataset.statusUrl.replace("00000000-0000-0000-0000-000000000000", transaction.id));
      })
      .catch(function () {
        payButton.disabled = false;
        showStatus("We could not reach the server. Check your connection and try again.", "failed");
        retryButton.hidden = false;
      });
  });

  // The link already has a payment under way: follow it instead of offering a second one.
  if (form.dataset.paymentId && !form.dataset.paymentFinal) {
    poll(form.dataset.statusUrl.replace("00000000-0000-0000-0000-000000000000", form.dataset.paymentId));
  }

  retryButton.addEventListener("click", function () {
    clearTimeout(pollTimer);
    statusBox.hidden = true;
    retryButton.hidden = true;
    form.hidden = false;
    phone.focus();
  });
})();
