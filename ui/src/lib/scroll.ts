// Auto-scroll that respects the user: follow new content only while the view is at the bottom.

export interface ScrollMetrics {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

/** True when the view is within `threshold` px of the bottom. */
export function isNearBottom(el: ScrollMetrics, threshold = 48): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight <= threshold;
}
