from stream_app.cli.main import main

main()
