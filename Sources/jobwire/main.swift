print("jobwire: under construction")
