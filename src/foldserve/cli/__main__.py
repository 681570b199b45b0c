from foldserve.cli import main

main()
