"""The run's options: their one declaration, the validated config, and the defaults chosen
from the data for whatever the user left unset."""
