"""ftbench's own test tiers (the plugin itself loads through its pytest11 entry point):

    pytest tests/                                         # unit and plugin tests, <3 minutes, CPU
    pytest tests/ -m slow                                 # the throughput gate's timed plants
    pytest bench/ --ftb-data-dir ../shared/data      # the smoke benchmark, ~10 minutes, CPU
    pytest bench/ --ftb-profile full                      # the HF course recipe, on a GPU

Nothing heavy is imported here.
"""
