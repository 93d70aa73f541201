use clap::Parser;

fn main() {
    let cli = picomon::cli::Cli::parse();
    let code = match picomon::daemon::main(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("picomon: {err:#}");
            1
        }
    };
    std::process::exit(code);
}
