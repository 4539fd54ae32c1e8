"""`python -m studio.engine.training.worker RUN_DIR`: the training worker's command, as the supervisor, the
handoff script and `accelerate launch` start it. Nothing imports this module; the process lives in
studio.engine.training.entry and the training in studio.engine.training.recipe.
"""

import sys

from studio.engine.training.entry import main

if __name__ == "__main__":
    sys.exit(main())
