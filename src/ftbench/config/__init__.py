"""What a run is asked for: the option table, profiles and jobs, and a case's spec, data source
and gate policy built once from them (`build`).
"""
