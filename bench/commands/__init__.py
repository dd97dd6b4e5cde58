"""Sub-commands of the ``cbred`` CLI, one module each."""
