// Auto-continue to ipernity after the configured number of seconds, unless the visitor stops it.
// Served as a file so that the Content-Security-Policy can forbid inline script.
(function () {
  'use strict';
  var form = document.getElementById('continue-form');
  if (!form) return;
  var seconds = parseInt(form.getAttribute('data-countdown') || '0', 10);
  var status = form.querySelector('.countdown');
  var stop = document.getElementById('countdown-stop');
  if (!(seconds > 0) || !status || !stop) return;
  var template = status.getAttribute('data-template') || '{seconds}';
  var render = function () { status.textContent = template.replace('{seconds}', String(seconds)); };
  status.hidden = false;
  stop.hidden = false;
  render();
  var timer = window.setInterval(function () {
    seconds -= 1;
    if (seconds <= 0) {
      window.clearInterval(timer);
      form.submit();
      return;
    }
    render();
  }, 1000);
  stop.addEventListener('click', function () {
    window.clearInterval(timer);
    status.hidden = true;
    stop.hidden = true;
  });
})();
