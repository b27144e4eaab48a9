from pipelines.performance.job import main

raise SystemExit(main())
