"""The machine a case runs on: devices and the environment fingerprint, the device probe,
contention from other processes, several processes, the Hub, out of memory.
"""
