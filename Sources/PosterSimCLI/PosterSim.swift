import ArgumentParser

@main
struct PosterSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postersim",
        abstract: "Find movie posters that look alike.",
        subcommands: [
            IngestCommand.self, SyncCommand.self, SimilarCommand.self, SearchCommand.self, StatsCommand.self, SkippedCommand.self,
            CheckCommand.self,
            ServeCommand.self,
            DatabaseCommand.self, ExportCommand.self, PineconeCommand.self,
            EmbedCommand.self, EmbedTextCommand.self, PreprocessCommand.self, ModelsCommand.self,
        ])
}
