"""ftbench's own test tiers (the plugin itself loads through its pytest11 entry point):

    pytest tests/                                         # unit and plugin tests, ~2 minutes, CPU
    pytest bench/ --ftb-data-dir ../shared/data/glue      # the smoke benchmark, ~10 minutes, CPU
    pytest bench/ --ftb-profile full                      # the HF course recipe, on a GPU

Nothing heavy is imported here.
"""
