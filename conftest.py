"""ftbench's own test tiers (the plugin itself loads through its pytest11 entry point):

    pytest tests/                                    # unit and plugin tests, ~4 minutes, CPU
    pytest tests/ -m slow                            # timed training and planted slowdowns, ~3
    pytest bench/ --ftb-data-dir ../shared/data      # the smoke benchmark, ~30-45 minutes, CPU
    pytest bench/ --ftb-profile full                 # the full profile, on a GPU

Nothing heavy is imported here.
"""
