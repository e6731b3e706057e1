package example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;

/** Lanyard in a JUnit 5 suite: one container for the class, the code flow with plain HTTP. */
class SignInTest {
    static final String CLIENT_ID = "web", CLIENT_SECRET = "web-secret";
    static final String REDIRECT_URI = "http://127.0.0.1:9999/cb";
    static final HttpClient HTTP = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build();

    static GenericContainer<?> lanyard;
    static String issuer;

    @BeforeAll
    static void start() throws Exception {
        // The issuer must be the URL the tests reach, so the host port is chosen before start.
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        issuer = "http://127.0.0.1:" + port;
        lanyard = new GenericContainer<>(System.getProperty("lanyard.image", "lanyard"))
                .withExposedPorts(8080)
                .withEnv("LANYARD_ISSUER", issuer)
                .withFileSystemBind(Path.of("../lanyard-seed.toml").toAbsolutePath().toString(), "/seed.toml", BindMode.READ_ONLY)
                .withCommand("--ephemeral", "--dev-login", "--seed", "/seed.toml")
                .waitingFor(Wait.forHttp("/readyz").forPort(8080));
        lanyard.setPortBindings(List.of(port + ":8080"));
        lanyard.start();
    }

    @AfterAll
    static void stop() {
        if (lanyard != null) lanyard.stop();
    }

    /** One string field of a flat JSON object (a JSON library would do in a real suite). */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        assertTrue(m.find(), name + " in " + json);
        return m.group(1);
    }

    static String form(Map<String, String> values) {
        return values.entrySet().stream()
                .map(e -> URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8) + "=" + URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8))
                .collect(Collectors.joining("&"));
    }

    static String get(String url, String bearer) throws Exception {
        var request = HttpRequest.newBuilder(URI.create(url));
        if (bearer != null) request.header("Authorization", "Bearer " + bearer);
        HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        return response.body();
    }

    @Test
    void aliceSignsInWithDevLoginAndUserinfoKnowsHer() throws Exception {
        String discovery = get(issuer + "/.well-known/openid-configuration", null);
        assertEquals(issuer, field(discovery, "issuer"));

        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        byte[] random = new byte[48];
        new SecureRandom().nextBytes(random);
        String verifier = b64.encodeToString(random);
        String challenge = b64.encodeToString(MessageDigest.getInstance("SHA-256").digest(verifier.getBytes(StandardCharsets.US_ASCII)));
        String authorize = field(discovery, "authorization_endpoint") + "?" + form(Map.of(
                "response_type", "code", "client_id", CLIENT_ID, "redirect_uri", REDIRECT_URI,
                "scope", "openid profile email", "state", "s-1", "nonce", "n-1", "login_hint", "alice",
                "code_challenge", challenge, "code_challenge_method", "S256"));
        HttpResponse<String> redirect = HTTP.send(HttpRequest.newBuilder(URI.create(authorize)).build(), HttpResponse.BodyHandlers.ofString());
        String location = redirect.headers().firstValue("Location").orElseThrow();
        Matcher code = Pattern.compile("[?&]code=([^&]+)").matcher(location);
        assertTrue(code.find(), location);

        String basic = Base64.getEncoder().encodeToString((CLIENT_ID + ":" + CLIENT_SECRET).getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> tokens = HTTP.send(HttpRequest.newBuilder(URI.create(field(discovery, "token_endpoint")))
                .header("Authorization", "Basic " + basic)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(form(Map.of(
                        "grant_type", "authorization_code", "code", code.group(1),
                        "redirect_uri", REDIRECT_URI, "code_verifier", verifier))))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, tokens.statusCode(), tokens.body());

        String userinfo = get(field(discovery, "userinfo_endpoint"), field(tokens.body(), "access_token"));
        assertEquals("alice@example.test", field(userinfo, "email"));
    }
}
