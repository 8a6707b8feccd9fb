"""Running stages: the job hand-over, the run's stage server, and one stage run for one node.

Empty on purpose: a job process imports glan.runtime.job, which must stay standard library only.
"""
