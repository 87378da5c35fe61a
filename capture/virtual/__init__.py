"""The virtual board: emits byte for byte what the firmware emits, with no board attached.

``sources`` says what the board senses (replayed takes, idle noise; the classifier firmware's
behaviour lives in ``training.board_sim``); ``link`` paces the events in real time, injects
faults and encodes them as serial frames on a pseudo-terminal or as BLE notifications.
"""
