"""A small app of the test project: views that send mail, and e-mail templates."""
