from pipelines.monitor.job import main

raise SystemExit(main())
