"""One exception type for bad user input, so every entry point can print one clear line."""


class UserInputError(ValueError):
    """Bad input from the user: a file, a line, an option. Its message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
