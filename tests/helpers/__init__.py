"""What several test modules share. Test modules import helpers from here, never from
one another."""
