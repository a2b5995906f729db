// @ts-check
// The 8 on-screen buttons: one row, low (left) to high (right), coloured, labelled for keys and
// for screen readers. Shows which are down; input handling lives in inputs.js.

export const COLORS = ['#EE2B29', '#ff9800', '#ffff00', '#c6ff00', '#00e5ff', '#2979ff', '#651fff', '#d500f9'];
// The keys that play each button: a digit row and the home row (A S D F for the left hand, J K L ; right).
export const KEY_LABELS = [['1', 'A'], ['2', 'S'], ['3', 'D'], ['4', 'F'], ['5', 'J'], ['6', 'K'], ['7', 'L'], ['8', ';']];

export const buttonColor = (b) => COLORS[b % COLORS.length];

// WCAG relative luminance of '#rrggbb'.
export function luminance(hex) {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

/** Black or white text, whichever contrasts more with the background colour. */
export const labelColor = (hex) => ((luminance(hex) + 0.05) / 0.05 >= 1.05 / (luminance(hex) + 0.05) ? '#000' : '#fff');

function describe(b, n) {
  const where = b === 0 ? ', lowest' : b === n - 1 ? ', highest' : '';
  const keys = KEY_LABELS[b] ? ` (key ${KEY_LABELS[b].join(' or ')})` : '';
  return `button ${b + 1}${where}${keys}`;
}

export class ButtonsView {
  constructor(el, numButtons) {
    this.els = Array.from({ length: numButtons }, (_, b) => {
      const button = document.createElement('button');
      button.className = 'genie-button';
      button.type = 'button';
      button.dataset.button = String(b);
      button.style.setProperty('--color', buttonColor(b));
      button.style.setProperty('--label', labelColor(buttonColor(b)));
      const [l1, l2] = KEY_LABELS[b] || [String(b + 1), ''];
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = l1;
      const label2 = document.createElement('span');
      label2.className = 'label2';
      label2.textContent = l2 || '';
      button.append(label, label2);
      button.setAttribute('aria-label', describe(b, numButtons));
      if (KEY_LABELS[b]) button.setAttribute('aria-keyshortcuts', KEY_LABELS[b].join(' '));
      el.appendChild(button);
      return button;
    });
  }

  setDown(b, down) {
    this.els[b].classList.toggle('down', down);
  }
}
