"""Physical units the kit converts between (one definition; the wire's counts scale is
``capture.protocol``'s): takes store acceleration in g and rotation in deg/s."""
from __future__ import annotations

G = 9.80665  # standard gravity: m/s^2 per g (Edge Impulse and phone exports use m/s^2)
