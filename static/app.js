// Progressive enhancement of the upload form: pictures dropped or pasted anywhere on the page,
// or taken with the camera, a preview, checks before uploading, the chosen model's classes and a
// busy button. Without JavaScript the plain file input, select and submit button do the
// same job, and the server makes every check itself. On the models pages: tables' scrolling
// boxes in the Tab order only while they scroll.
"use strict";

function enhance(form) {
  var zone = form.querySelector(".drop-zone");
  var input = form.querySelector("input[type=file]");
  var text = form.querySelector(".drop-text");
  var errors = form.querySelector(".errors");
  var formats = form.querySelector("#upload-formats");
  var select = form.querySelector("select");
  var classes = form.querySelector(".model-classes");
  var explain = form.querySelector("input[data-not-with]");
  var explainNote = document.getElementById("explain-note");
  var button = form.querySelector("button[type=submit]");
  // What the busy button and the zone show while the form works (making pictures smaller, sending
  // them), said to screen readers too, who are not on the button when Enter in the check box sent
  // the form, and for whom the input's name leaves out the zone's note. A live region there from
  // the start (one added as it is filled is not read), after the form: not inside its aria-busy.
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  form.parentNode.insertBefore(status, form.nextSibling);

  // From here the zone shows the chosen file and offers dropping one (style.css): the native
  // input is hidden from sight.
  form.classList.add("enhanced");
  // Pictures past the limit are made smaller below, where the browser can draw them off screen.
  if (window.createImageBitmap) formats.textContent = formats.dataset.scripted;
  // A required input is "invalid" to screen readers before anything is chosen; the submit
  // handler below asks for the file instead, in the server's words (data-missing).
  input.required = false;
  var prompt = text.innerHTML;
  var buttonText = button.textContent;
  var maxBytes = Number(input.dataset.maxBytes);
  var maxSize = input.dataset.maxSize; // the limit in the server's words, such as "10 MB"
  var maxPictures = Number(input.dataset.maxPictures);
  // The request also carries the multipart headers, the CSRF token and the model's name.
  var overhead = 4096;
  // Images that browsers know and the server does not take (an iPhone's HEIC, a scan's TIFF).
  var OTHER_IMAGES = ["image/tiff", "image/heic", "image/heif", "image/avif", "image/jxl", "image/svg+xml",
    "image/x-icon", "image/vnd.microsoft.icon"];

  // Only a chosen picture has a preview: an <img> without a src is not valid HTML. It is
  // decorative (alt ""): inside the label, its text would become the input's name.
  var preview = document.createElement("img");
  preview.className = "preview";
  preview.alt = "";
  preview.hidden = true;
  text.parentNode.insertBefore(preview, text);

  // The server refuses a too-large request unread, and its answer could not keep the model
  // chosen; so the size (and that each file is an image at all) is checked before uploading. A
  // file's own size is not said: one just under the limit is refused for the form around it.
  // Several pictures go to one model, with the server's words where they cannot (data-*).
  function problem(files) {
    return kindProblem(files) || sizeProblem(files);
  }

  function kindProblem(files) {
    for (var i = 0; i < files.length; i++) {
      if (files[i].type && !/^image\//.test(files[i].type)) {
        return files[i].name + " is not an image.";
      }
      // Said before its size: a smaller one would be refused too. Named rather than "not in
      // accept", as browsers name some formats the server takes by other types.
      if (OTHER_IMAGES.indexOf(files[i].type) >= 0) {
        return files[i].name + " is not a " + input.dataset.formats + " image, the kinds this app takes.";
      }
    }
    if (files.length > maxPictures) return input.dataset.tooMany;
    if (files.length > 1 && select.value === explain.dataset.notWith) return input.dataset.compareSeveral;
    return "";
  }

  function sizeProblem(files) {
    if (requestBytes(files) <= maxBytes) return "";
    if (files.length > 1) {
      return "These " + files.length + " images are too large to send together (the limit is " + maxSize +
        " in all): choose fewer or smaller ones.";
    }
    return files[0].name + " is too large to send (the limit is " + maxSize + "): choose a smaller image.";
  }

  function requestBytes(files) {
    var total = overhead * files.length;
    for (var i = 0; i < files.length; i++) total += files[i].size;
    return total;
  }

  function showError(message) {
    errors.textContent = "";
    errors.hidden = !message;
    // The server's error may have been the model's; any said here is the files'.
    select.removeAttribute("aria-invalid");
    select.setAttribute("aria-describedby", classes.id);
    if (message) {
      var line = document.createElement("p");
      line.textContent = message;
      errors.appendChild(line);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", errors.id + " " + formats.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", formats.id);
    }
  }

  function showPreview(files, doing) {
    preview.hidden = true; // never beside another file's name
    preview.removeAttribute("src");
    if (!files.length) {
      text.innerHTML = prompt;
      input.removeAttribute("aria-label"); // named by its label again
      return;
    }
    var names = Array.prototype.map.call(files, function (file) { return file.name; }).join(", ");
    text.textContent = (files.length > 1 ? files.length + " images: " + names : names) + (doing || note);
    input.setAttribute("aria-label", (files.length > 1 ? "Images: " : "Image: ") + names);
    var file = files[0];
    if (files.length > 1 || !/^image\//.test(file.type)) return;
    var reader = new FileReader();
    reader.onload = function () {
      preview.src = reader.result; // a data: URI, which the Content-Security-Policy allows
      preview.hidden = false;
    };
    reader.readAsDataURL(file);
  }

  // The form's error as it stands for the files chosen now: an earlier answer's, or the
  // camera's, is about another try.
  function recheck() {
    var files = input.files;
    // While they are made smaller, their size is not yet what will be sent.
    showError(files.length ? (shrinking ? kindProblem(files) : problem(files)) : "");
    showClasses(); // whether explaining is offered depends on how many
  }

  // Pictures too large to send together are made smaller here rather than refused: two or three
  // phone photos would fill the limit. A model sees a few hundred pixels a side at most, and the
  // answer shows the picture at 640, so SHRUNK_SIDE loses nothing either uses. Files that the
  // browser cannot draw go as they are, and are refused if still too large.
  var SHRUNK_SIDE = 1024;
  var choices = 0; // each try counted, so that a slow shrinking cannot overwrite a newer choice
  var shrinking = false;
  var note = ""; // said after the chosen files' names: that they were made smaller

  function chosen() {
    stopCamera(); // a picture chosen, dropped or pasted instead: its live view would stay on
    choices++;
    if (shrinking) ready(); // others' shrinking, now of no use
    shrinking = false;
    note = "";
    if (onlyTooLarge()) {
      shrinkChosen();
    } else {
      showPreview(input.files);
      recheck();
    }
  }

  function onlyTooLarge() {
    var files = input.files;
    return !kindProblem(files) && Boolean(sizeProblem(files)) && Boolean(window.createImageBitmap);
  }

  function shrinkChosen() {
    var files = input.files;
    var choice = ++choices;
    shrinking = true;
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Making smaller\u2026";
    var them = files.length > 1 ? "them" : "it";
    status.textContent = "Making " + them + " smaller to send\u2026";
    showPreview(files, " (making " + them + " smaller to send\u2026)");
    recheck();
    smaller(files).then(function (made) {
      if (choice !== choices) return;
      shrinking = false;
      ready();
      var before = requestBytes(files), after = requestBytes(made);
      if (after < before) {
        input.files = made;
        note = " (made smaller to send: " + megabytes(before) + " to " + megabytes(after) + ")";
        status.textContent = "Made smaller to send: " + megabytes(before) + " to " + megabytes(after) + ".";
      }
      showPreview(input.files);
      recheck();
    });
  }

  function smaller(files) {
    var made = new DataTransfer(); // a FileList, as the input takes
    // One at a time: thirty 12-megapixel photos decoded at once would take gigabytes.
    return Array.prototype.reduce.call(files, function (done, file) {
      return done.then(function () { return shrink(file); }).then(function (each) { made.items.add(each); });
    }, Promise.resolve()).then(function () { return made.files; });
  }

  // The file as a JPEG that fits SHRUNK_SIDE, turned upright as its EXIF says and with transparency
  // on white (as the server reads it), its colours in sRGB as the canvas holds them (the server reads
  // a Display P3 photo's numbers as they are); the file itself where that is no smaller or cannot be
  // drawn, and for a kind the server does not take (the input's accept): it would pass as a JPEG when large.
  function shrink(file) {
    // A name without a known extension has no type: tried, as the server reads the kind from the bytes.
    if (file.type && input.accept.split(",").indexOf(file.type) < 0) return Promise.resolve(file);
    return createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bitmap) {
      var scale = Math.min(1, SHRUNK_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      var context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.imageSmoothingQuality = "high";
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          // The name kept: each answer is headed by it. The server reads the kind from the bytes.
          resolve(blob && blob.size < file.size ? new File([blob], file.name, {type: "image/jpeg"}) : file);
        }, "image/jpeg", 0.9);
      });
    }).catch(function () { return file; });
  }

  function megabytes(bytes) {
    return (bytes / 1e6).toFixed(1) + " MB"; // decimal, as the server states its limit
  }

  preview.addEventListener("error", function () {
    preview.hidden = true; // named like an image, but not one the browser can draw
  });
  input.addEventListener("change", chosen);

  // A drop anywhere on the page is a drop on the form: the browser would otherwise open
  // the file itself and leave the app.
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function () {
    zone.classList.remove("dragging"); // the next dragover, if still over the page, puts it back
  });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("dragging");
    var files = event.dataTransfer ? event.dataTransfer.files : [];
    if (files.length) {
      take(files);
    } else {
      showError("Drop the image file itself: a link or text cannot be classified.");
    }
  });
  // A picture pasted anywhere on the page (a screenshot, an image copied in another tab) is
  // taken as a dropped one; pasted text is left to go where it goes.
  document.addEventListener("paste", function (event) {
    var files = event.clipboardData ? event.clipboardData.files : [];
    if (!files.length) return;
    event.preventDefault();
    take(files);
  });

  function take(files) {
    input.files = files;
    chosen();
  }

  // Where the browser lets the page use a camera: only in a secure context (localhost or https;
  // elsewhere navigator.mediaDevices is missing). On a touch screen style.css hides the button:
  // the file input's own chooser offers the phone's camera app there, at its full resolution.
  var stopCamera = function () {};
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    stopCamera = useCamera(form.querySelector(".camera"), function (file) {
      var files = new DataTransfer(); // a FileList, as the input takes
      files.items.add(file);
      take(files.files);
      input.focus(); // named for the picture now, as a screen reader says
    }, showError, recheck);
  }

  function showClasses() {
    var option = select.options[select.selectedIndex];
    classes.textContent = option ? option.dataset.classes : "";
    // Explaining is for one model and one picture: not offered while every model is asked, or
    // several pictures are chosen (the server would refuse it).
    explain.disabled = (Boolean(option) && option.value === explain.dataset.notWith) || input.files.length > 1;
    explainNote.hidden = !explain.disabled;
  }
  select.addEventListener("change", function () {
    if (!input.files.length) showClasses(); // keeps the server's error, about the files sent before
    else if (!shrinking && onlyTooLarge()) shrinkChosen(); // refused for the model before (every model)
    else recheck(); // every model for several pictures is refused
  });

  form.addEventListener("submit", function (event) {
    if (form.hasAttribute("aria-busy") || shrinking) {
      event.preventDefault(); // already sending, or not ready to: a press would send the image again, or too large
      return;
    }
    var message = input.files.length ? problem(input.files) : input.dataset.missing;
    if (message) {
      event.preventDefault();
      showError(message);
      input.focus();
      return;
    }
    // aria-disabled, not disabled: Chromium takes the focus off a disabled button, which left
    // a keyboard or screen reader user on nothing while the image was sent.
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Classifying\u2026";
    status.textContent = button.textContent;
    form.setAttribute("aria-busy", "true");
    stopCamera(); // the page is left only once the answer comes
  });
  var ready = function () {
    button.removeAttribute("aria-disabled");
    button.textContent = buttonText;
    status.textContent = "";
    form.removeAttribute("aria-busy");
  };
  // Back from the answer, the back/forward cache restores the page as it was left: busy. Without
  // that cache the page loads again, and the browser restores the files and choices after "load",
  // just before this: the preview, the model's classes and the explain box follow them here.
  window.addEventListener("pageshow", function () {
    ready();
    if (shrinking) return;
    if (input.files.length) {
      showPreview(input.files);
      recheck();
    } else {
      showClasses(); // keeps the server's error, about the files sent before
    }
  });
  // Escape stops the upload (the browser's stop button fires no event): the form can send again.
  // Not while pictures are made smaller: no upload is under way, and the form must wait for them.
  window.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !shrinking) ready();
  });
}

// The camera's live view in the upload zone; its picture goes to `deliver` as a JPEG File, and
// `working` is called once the view plays. The camera is on only while the view is open: closed
// by a picture, Cancel, Escape, an error, leaving the page or the returned function, it stops
// every track, which turns the camera's light off.
function useCamera(camera, deliver, showError, working) {
  var open = camera.querySelector(".camera-open");
  var view = camera.querySelector(".camera-view");
  var video = view.querySelector("video");
  var shutter = view.querySelector(".camera-take");
  var openText = open.textContent;
  var stream = null;
  var asked = 0; // presses and stops: a camera that comes after a stop is turned off at once
  // getUserMedia's refusals, by the DOMException's name; the file input is always the way round them.
  var problems = {
    NotAllowedError: "The camera was not allowed: allow it in the browser's site settings, or choose an image instead.",
    NotFoundError: "No camera was found: connect one, or choose an image instead.",
    NotReadableError: "The camera could not be started: another program may be using it.",
  };

  function turnOff(media) {
    media.getTracks().forEach(function (track) { track.stop(); });
  }

  function stop() {
    asked++;
    if (stream) turnOff(stream);
    stream = null;
    video.srcObject = null;
    open.hidden = false;
    open.removeAttribute("aria-disabled");
    open.textContent = openText;
    if (view.contains(document.activeElement)) open.focus(); // not lost with the view
    view.hidden = true;
  }

  function fail(message) {
    stop();
    showError(message);
  }

  camera.hidden = false;
  open.addEventListener("click", function () {
    if (open.hasAttribute("aria-disabled")) return; // already asking: a second camera would stay on
    var press = ++asked;
    open.setAttribute("aria-disabled", "true");
    open.textContent = "Starting the camera\u2026";
    navigator.mediaDevices.getUserMedia({video: true}).then(function (media) {
      if (press !== asked) { // stopped while the browser asked (a file chosen, the page left)
        turnOff(media);
        return;
      }
      stream = media;
      stream.getVideoTracks()[0].addEventListener("ended", function () {
        fail("The camera stopped (unplugged or turned off): use it again, or choose an image.");
      });
      video.srcObject = stream; // a MediaStream, not a URL: no media-src needed in the policy
      return video.play().then(function () {
        open.hidden = true;
        view.hidden = false;
        working(); // a refusal said before no longer holds
        shutter.focus();
      });
    }).catch(function (error) {
      if (press !== asked) return; // closed already, for another reason (play() is cut short)
      fail(problems[error.name] || "The camera could not be started: choose an image instead.");
    });
  });

  shutter.addEventListener("click", function () {
    // The frame as the camera sends it: the picture is never mirrored.
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    stop();
    canvas.toBlob(function (blob) {
      if (blob) {
        deliver(new File([blob], "camera.jpg", {type: "image/jpeg"}));
      } else {
        showError("The picture could not be taken: try the camera again, or choose an image.");
      }
    }, "image/jpeg");
  });
  view.querySelector(".camera-cancel").addEventListener("click", stop);
  view.addEventListener("keydown", function (event) {
    if (event.key === "Escape") stop();
  });
  window.addEventListener("pagehide", stop);
  return stop;
}

// A table's scrolling box takes the focus (to scroll from the keyboard) only while its table
// overflows it: otherwise it would be a Tab stop that does nothing.
function focusableWhileScrolling(box) {
  var update = function () {
    if (box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight) box.tabIndex = 0;
    else box.removeAttribute("tabindex");
  };
  update();
  window.addEventListener("resize", update);
}

var uploadForm = document.querySelector("form.upload");
if (uploadForm) enhance(uploadForm);
document.querySelectorAll(".table-scroll").forEach(focusableWhileScrolling);
