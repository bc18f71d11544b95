// Progressive enhancement of the upload form: drag and drop, and a preview of the chosen
// picture. Without JavaScript the plain file input and submit button do the same job.
"use strict";

document.querySelectorAll("form.upload").forEach(function (form) {
  var zone = form.querySelector(".drop-zone");
  var input = form.querySelector("input[type=file]");
  var preview = form.querySelector(".preview");
  var text = form.querySelector(".drop-text");
  if (!zone || !input) return;

  var prompt = text.innerHTML;

  function showPreview() {
    var file = input.files && input.files[0];
    if (preview) {
      preview.hidden = true; // never beside another file's name
      preview.removeAttribute("src");
    }
    if (!file) {
      text.innerHTML = prompt;
      return;
    }
    text.textContent = file.name;
    if (!preview || !/^image\//.test(file.type)) return;
    var reader = new FileReader();
    reader.onload = function () {
      preview.src = reader.result; // a data: URI, which the Content-Security-Policy allows
      preview.hidden = false;
    };
    reader.readAsDataURL(file);
  }

  if (preview) {
    preview.addEventListener("error", function () {
      preview.hidden = true; // named like an image, but not one the browser can draw
    });
  }
  input.addEventListener("change", showPreview);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showPreview();
    }
  });
});
