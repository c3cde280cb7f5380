from citypilot.cli import main

main()
