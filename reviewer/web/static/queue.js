// The queue page: changing a filter shows the list at once.
"use strict";
document.querySelectorAll("#queue-filters select").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
