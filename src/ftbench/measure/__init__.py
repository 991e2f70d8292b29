"""Running a case and measuring it: the runner's named steps, the trainer callbacks that time
steps and watch the machine, MFU, the cost curve, and the launcher for N processes.
"""
