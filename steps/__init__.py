"""Container-side code: the step runtime and the pipeline's steps.

Nothing here imports `workflows`; the orchestrator knows steps only by their declarations.
"""

__version__ = "0.1.0"
