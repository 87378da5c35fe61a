"""Device link: wire protocol, transports (serial, BLE, virtual), recording, importers.

The most upstream package: takes flow from here to ``training`` and then to ``dashboard``.
"""
