import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs Neo4j Community, embedded, as the test server of scripts/services.sh.
 *
 * <p>Usage: {@code java -Xmx512m -cp 'classes:jars/*' Launcher HOME HOST PORT PAGECACHE_MB}.
 * The database files live under HOME; Bolt listens on HOST:PORT with authentication off (any user
 * and password are accepted) and without TLS; no HTTP connector. SIGTERM (or Ctrl-C) shuts the
 * DBMS down cleanly, which checkpoints the store, before the JVM exits.
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 4) {
            System.err.println("usage: Launcher HOME HOST PORT PAGECACHE_MB");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String host = args[1];
        int port = Integer.parseInt(args[2]);
        long pageCacheMb = Long.parseLong(args[3]);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setUserLogProvider(new Log4jLogProvider(System.out, Level.INFO))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pageCacheMb))
                // This machine has no route out: never try to send usage data.
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j launcher: shutting down");
            dbms.shutdown();
            System.out.println("neo4j launcher: stopped");
            stopped.countDown();
        }, "neo4j-shutdown"));

        // services.sh waits for the Bolt port; this line is for a person reading the log.
        System.out.printf("neo4j launcher: ready, bolt://%s:%d, data in %s%n", host, port, home);
        stopped.await();
    }
}
