// A notice for new urgent tickets on the desk (issue 22, point 5), off by default:
// a short tone made with WebAudio (no sound file) and, when the browser allows it, a
// desktop notification. The choice is remembered in this browser.

import { notify, t } from './common.js';

const KEY = 'yw.desk.alerts';
let audio = null;

function on() {
  return localStorage.getItem(KEY) === 'on';
}

// Wires the toggle (a checkbox). The audio context is made on the click that turns
// the notice on, as browsers allow sound only after a gesture.
export function setupAlerts(toggle) {
  toggle.checked = on();
  toggle.addEventListener('change', () => {
    localStorage.setItem(KEY, toggle.checked ? 'on' : 'off');
    if (!toggle.checked) return;
    try {
      audio = audio || new AudioContext();
    } catch (e) {
      audio = null; // no sound here; the desktop notice and the toast remain
    }
    if ('Notification' in window && Notification.permission === 'default') {
      Notification.requestPermission().catch(() => {});
    }
  });
}

function beep() {
  if (!audio) return;
  const now = audio.currentTime;
  for (const [i, freq] of [880, 660].entries()) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + i * 0.22);
    gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.22 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.22 + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.22);
    osc.stop(now + i * 0.22 + 0.21);
  }
}

// Called for each ticket that arrives live in the list.
export function alertIfUrgent(tk) {
  if (!on() || tk.urgency === 'normal') return;
  const text = t('desk.alert.text', { number: tk.number, title: tk.title, urgency: t(`urgency.${tk.urgency}`) });
  document.body.dataset.alerts = String(Number(document.body.dataset.alerts || 0) + 1);
  beep();
  notify(text, 'error');
  if ('Notification' in window && Notification.permission === 'granted') {
    try {
      new Notification(t('desk.alert.title'), { body: text, tag: tk.id });
    } catch (e) {
      // Some browsers allow notices only from a service worker; the toast remains.
    }
  }
}
